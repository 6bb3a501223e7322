"""Business rules. Nothing in here touches Flask's request objects; views call these."""

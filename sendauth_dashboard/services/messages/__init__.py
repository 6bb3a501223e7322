"""The organisation's own messages: the words its requests reach people in."""

"""The blueprints: thin views that parse a form, call a service, render or redirect; and
what several of them share (form pieces, CSV downloads, template filters)."""

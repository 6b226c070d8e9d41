"""frontend: the demo web page, the HTTPS listener's default action (port 80)."""

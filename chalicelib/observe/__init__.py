"""Operating Inkwell: structured logs (`logs`), CloudWatch embedded-metric documents (`metrics`)
and optional error tracking (`tracking`). app.py configures them; importing registers nothing."""

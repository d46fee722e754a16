"""soar-imap for Splunk SOAR (see app.py)."""

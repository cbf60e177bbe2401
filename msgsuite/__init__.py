"""Code shared by every service and client of the message suite."""

"""The one-shot service that brings the database schema up to date (see __main__)."""

"""engagement-streams: which followers are actually engaged, as it happens."""

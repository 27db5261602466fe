"""The durable transaction pipeline: accepted → submitted → confirmed | failed."""

"""A user's service whose handler traces through the OpenTelemetry API (for test_xray)."""

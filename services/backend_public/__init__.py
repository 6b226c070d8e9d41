"""backend-public: the public API the ALB routes ``/api/*`` to (port 8080)."""

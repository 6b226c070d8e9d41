"""backend-private: answers ``/endpoint`` with its ECS task id (port 8090)."""

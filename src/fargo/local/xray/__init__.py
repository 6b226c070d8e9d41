"""AWS X-Ray in the twin: the daemon's UDP endpoint (`daemon`), the segments it keeps for
the run (`store`), and what the console would draw from them: traces with the load
balancers and discovery as nodes of their own, and the service map (`service_graph`)."""

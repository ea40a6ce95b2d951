"""modelops data plane: the model server, the drift monitor and the drift engine."""

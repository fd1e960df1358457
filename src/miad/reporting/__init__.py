"""Tables (paper value beside ours) and figures."""

"""Every `vitrine bench ...`: each measures against a baseline taken in the same run and prints JSON."""

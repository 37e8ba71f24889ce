"""Hook points of the MM core: hook and MM helper records, the host environment, dispatch."""

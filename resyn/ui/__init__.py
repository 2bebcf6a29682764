"""`resyn ui`: a local, read-only web viewer of a workspace's jobs, environments and traces."""

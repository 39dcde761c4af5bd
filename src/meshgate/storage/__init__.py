"""Object storage per organization: an S3-compatible bucket or the local directory, reached by signed URLs."""

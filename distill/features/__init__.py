"""Teacher features: extraction to Parquet, the feature store, and poolings."""

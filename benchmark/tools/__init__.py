"""Checks and utilities beside the pipeline: annotation sheet checks, the plugin contract check, the speed bench, prediction on new clips."""

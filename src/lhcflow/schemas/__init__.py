"""JSON schemas shipped with the package: ``config.schema.yaml`` types every key of the workflow
configuration, with its default (read by :func:`lhcflow.config.load_schema`)."""

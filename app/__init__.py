"""The application layer: jobs that use the domain (workflows) through connectors and the state store."""

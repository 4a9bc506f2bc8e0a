"""Plain functions and records behind the Pulumi components: the catalog,
the dependency graph, values layering, chart verification and stack
settings. Nothing here talks to Pulumi or a cluster, so all of it is unit
tested directly and runs before any resource is registered."""

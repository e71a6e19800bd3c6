"""The e2e tier's real systems: where `make e2e-tools` put them (`tools`), an API server
and a chart repository on loopback (`cluster`), and the project under the real Pulumi
CLI on a local backend (`workspace`). Used by tests/e2e and `mesh bench --engine real`."""

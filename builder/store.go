package builder

import "github.com/hasadna/conductor"

// Store is the state a builder reads and records: SQLite on the conductor's
// host, the conductor's state over NATS on a worker's host.
type Store = conductor.BuilderStore

package rhizome

// The apply vocabulary shared by the catalog (which plans and applies), the
// server (which carries it over HTTP) and the CLI (which shows it).

// Action is what an apply does to one object.
type Action string

const (
	ActionCreate    Action = "create"
	ActionUpdate    Action = "update"
	ActionUnchanged Action = "unchanged"
	ActionDelete    Action = "delete"
)

// SourceFile is one manifest file sent to apply.
type SourceFile struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

// ApplyRequest is the body of POST /api/v1/apply.
type ApplyRequest struct {
	Files  []SourceFile `json:"files"`
	DryRun bool         `json:"dry_run,omitempty"`
	Prune  bool         `json:"prune,omitempty"`
	// Expected pins the revision of objects ("Kind/id" -> revision) that a
	// plan was made on; 0 pins "does not exist". A changed object fails the
	// whole apply with EConflict.
	Expected map[string]int64 `json:"expected,omitempty"`
}

// FieldChange is one field that an update changes. Old is absent for an
// added field, New for a removed one.
type FieldChange struct {
	Path string `json:"path"`
	Old  any    `json:"old,omitempty"`
	New  any    `json:"new,omitempty"`
}

// Change is the plan for one object.
type Change struct {
	Action Action `json:"action"`
	Kind   Kind   `json:"kind"`
	ID     string `json:"id"`
	// BaseRevision is the revision the plan was made on (0: none).
	BaseRevision int64 `json:"base_revision"`
	// Revision is the revision after apply (0 for a dry run or delete).
	Revision int64         `json:"revision,omitempty"`
	Diff     []FieldChange `json:"diff,omitempty"`
	// Notes say how the platform maps a manifest choice, e.g. "processing
	// engine spark: runs on the embedded DuckDB engine".
	Notes []string `json:"notes,omitempty"`
	// Source is where the manifest was read from.
	Source *Pos `json:"source,omitempty"`
}

// Key is "Kind/id", the key of ApplyRequest.Expected.
func (c Change) Key() string { return string(c.Kind) + "/" + c.ID }

// ApplySummary counts changes by action.
type ApplySummary struct {
	Create    int `json:"create"`
	Update    int `json:"update"`
	Unchanged int `json:"unchanged"`
	Delete    int `json:"delete"`
}

// ApplyResult is the plan, and whether it was applied.
type ApplyResult struct {
	ApplyID string       `json:"apply_id"`
	DryRun  bool         `json:"dry_run"`
	Applied bool         `json:"applied"`
	Summary ApplySummary `json:"summary"`
	Changes []Change     `json:"changes"`
}

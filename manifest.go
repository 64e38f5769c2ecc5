package rhizome

import (
	"encoding/json"
)

// The typed shapes of Rhizome's own manifest kinds. Field names follow the
// guide (data-mesh-guide.txt): snake_case as in DataProductMetadata and
// DataOwnership. DataContract is ODCS and kept as a document (see
// spec.Document); DataProductInfrastructure is the guide's platform/v1
// manifest.

// APIVersion is the apiVersion of Rhizome's own kinds.
const APIVersion = "rhizome/v1"

// Sensitivity levels, from least to most protected (guide: DataSensitivity).
const (
	SensitivityPublic       = "public"
	SensitivityInternal     = "internal"
	SensitivityConfidential = "confidential"
	SensitivityRestricted   = "restricted"
)

// SensitivityLevels lists the levels from least to most protected.
func SensitivityLevels() []string {
	return []string{SensitivityPublic, SensitivityInternal, SensitivityConfidential, SensitivityRestricted}
}

// Ownership roles (guide: DataOwnership).
const (
	RoleTechnicalOwner = "technical_owner"
	RoleDeveloper      = "developer"
	RoleBusinessOwner  = "business_owner"
	RoleSteward        = "steward"
)

// Roles lists the ownership roles.
func Roles() []string {
	return []string{RoleTechnicalOwner, RoleDeveloper, RoleBusinessOwner, RoleSteward}
}

// Domain is a business domain with clear boundaries.
type Domain struct {
	APIVersion           string         `json:"apiVersion"`
	Kind                 string         `json:"kind"`
	Name                 string         `json:"name"`
	DisplayName          string         `json:"display_name,omitempty"`
	Description          string         `json:"description,omitempty"`
	OwnerTeams           []string       `json:"owner_teams"`
	BoundedContext       BoundedContext `json:"bounded_context,omitempty"`
	BusinessCapabilities []string       `json:"business_capabilities,omitempty"`
	UpstreamDomains      []string       `json:"upstream_domains,omitempty"`
	DownstreamDomains    []string       `json:"downstream_domains,omitempty"`
	CustomProperties     map[string]any `json:"custom_properties,omitempty"`
}

// BoundedContext names the entities a domain owns. An entity belongs to one
// domain only: the guide's remedy for overlapping domains.
type BoundedContext struct {
	Description string   `json:"description,omitempty"`
	Entities    []string `json:"entities,omitempty"`
}

// Team is a group of principals with the guide's ownership roles.
type Team struct {
	APIVersion           string         `json:"apiVersion"`
	Kind                 string         `json:"kind"`
	Name                 string         `json:"name"`
	DisplayName          string         `json:"display_name,omitempty"`
	Domain               string         `json:"domain,omitempty"`
	Description          string         `json:"description,omitempty"`
	Members              []Member       `json:"members"`
	OnCallRotation       string         `json:"on_call_rotation,omitempty"`
	EscalationPath       []string       `json:"escalation_path,omitempty"`
	CommunicationChannel string         `json:"communication_channel,omitempty"`
	CustomProperties     map[string]any `json:"custom_properties,omitempty"`
}

// Member is a principal in a team with its ownership roles.
type Member struct {
	Principal string   `json:"principal"`
	Name      string   `json:"name,omitempty"`
	Roles     []string `json:"roles,omitempty"`
}

// HasRole reports whether any member holding principal has role.
func (t *Team) HasRole(principal, role string) bool {
	for _, m := range t.Members {
		if m.Principal == principal {
			for _, r := range m.Roles {
				if r == role {
					return true
				}
			}
		}
	}
	return false
}

// DataProduct is the guide's DataProductMetadata plus ports, contract and
// infrastructure; shaped so it maps onto ODPS (id, name, domain, status,
// tags, inputPorts, outputPorts, customProperties).
type DataProduct struct {
	APIVersion          string             `json:"apiVersion"`
	Kind                string             `json:"kind"`
	ID                  string             `json:"id"`
	Name                string             `json:"name"`
	OwnerTeam           string             `json:"owner_team"`
	Domain              string             `json:"domain"`
	Description         string             `json:"description,omitempty"`
	Status              string             `json:"status,omitempty"` // ODPS: proposed, draft, active, deprecated, retired
	Tags                []string           `json:"tags,omitempty"`
	DocumentationURL    string             `json:"documentation_url,omitempty"`
	SLA                 SLA                `json:"sla,omitempty"`
	QualityMetrics      map[string]float64 `json:"quality_metrics,omitempty"`
	Quality             map[string]any     `json:"quality,omitempty"` // checks in the guide's syntax (quality.FromSpec)
	CurrentVersion      string             `json:"current_version"`
	PreviousVersions    []string           `json:"previous_versions,omitempty"`
	SensitivityLevel    string             `json:"sensitivity_level"`
	RetentionPeriodDays int                `json:"retention_period_days,omitempty"`
	InputPorts          []InputPort        `json:"input_ports,omitempty"`
	OutputPorts         []OutputPort       `json:"output_ports,omitempty"`
	Contract            string             `json:"contract,omitempty"`       // DataContract id (ODCS id)
	Infrastructure      string             `json:"infrastructure,omitempty"` // DataProductInfrastructure metadata.name
	Pipeline            *Pipeline          `json:"pipeline,omitempty"`
	CustomProperties    map[string]any     `json:"custom_properties,omitempty"`
}

// Pipeline is how a product's data is built from its input ports: SQL
// models run in order on the embedded engine (each may read the input
// ports, by name, and earlier models), the output model published as a new
// table snapshot.
type Pipeline struct {
	Models []PipelineModel `json:"models"`
	// Output names the model that is published; default the last one.
	Output string `json:"output,omitempty"`
	// Mode is replace (default), append, or merge (upsert on MergeKey).
	Mode     string   `json:"mode,omitempty"`
	MergeKey []string `json:"merge_key,omitempty"`
	// Schedule and Timeout override the infrastructure's orchestration.
	Schedule string `json:"schedule,omitempty"`
	Timeout  string `json:"timeout,omitempty"`
}

// PipelineModel is one named SQL model (a SELECT).
type PipelineModel struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	SQL         string `json:"sql"`
}

// OutputModel is the model a pipeline publishes.
func (p *Pipeline) OutputModel() string {
	if p.Output != "" || len(p.Models) == 0 {
		return p.Output
	}
	return p.Models[len(p.Models)-1].Name
}

// SLA is the guide's sla dict: freshness is a duration ("15min", "1 hour"),
// availability and accuracy are percentages ("99.95%").
type SLA struct {
	Freshness    string `json:"freshness,omitempty"`
	Availability string `json:"availability,omitempty"`
	Accuracy     string `json:"accuracy,omitempty"`
}

// InputPort is where a product's data comes from: a source system read by a
// connector, or an upstream data product.
type InputPort struct {
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	Product     string         `json:"product,omitempty"`   // upstream data product id
	Version     string         `json:"version,omitempty"`   // pinned upstream version
	Connector   string         `json:"connector,omitempty"` // csv, parquet, json, http, postgres, stream, ...
	Config      map[string]any `json:"config,omitempty"`
}

// OutputPort is how a product is served.
type OutputPort struct {
	Name        string         `json:"name"`
	Type        string         `json:"type"` // table, api, stream, file
	Description string         `json:"description,omitempty"`
	Format      string         `json:"format,omitempty"`
	Config      map[string]any `json:"config,omitempty"`
}

// OutputPortTypes lists the valid output port types.
func OutputPortTypes() []string { return []string{"table", "api", "stream", "file"} }

// Infrastructure is the guide's DataProductInfrastructure manifest
// (apiVersion platform/v1), accepted exactly as the guide writes it.
type Infrastructure struct {
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Metadata   InfraMetadata      `json:"metadata"`
	Spec       InfrastructureSpec `json:"spec"`
}

// InfraMetadata names the manifest; namespace is the domain.
type InfraMetadata struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// InfrastructureSpec is the guide's spec block.
type InfrastructureSpec struct {
	Storage       *InfraStorage       `json:"storage,omitempty"`
	Processing    *InfraProcessing    `json:"processing,omitempty"`
	Orchestration *InfraOrchestration `json:"orchestration,omitempty"`
	Quality       *InfraQuality       `json:"quality,omitempty"`
	Discovery     *InfraDiscovery     `json:"discovery,omitempty"`
	Security      *InfraSecurity      `json:"security,omitempty"`
}

type InfraStorage struct {
	Type       string `json:"type,omitempty"`
	Format     string `json:"format,omitempty"`
	Location   string `json:"location,omitempty"`
	Retention  string `json:"retention,omitempty"`
	Encryption string `json:"encryption,omitempty"`
}

type InfraProcessing struct {
	Engine      string `json:"engine,omitempty"`
	Version     string `json:"version,omitempty"`
	AutoScaling bool   `json:"auto_scaling,omitempty"`
	MinWorkers  int    `json:"min_workers,omitempty"`
	MaxWorkers  int    `json:"max_workers,omitempty"`
}

type InfraOrchestration struct {
	Tool     string `json:"tool,omitempty"`
	Schedule string `json:"schedule,omitempty"`
	Timeout  string `json:"timeout,omitempty"`
}

type InfraQuality struct {
	Framework string       `json:"framework,omitempty"`
	Checks    []InfraCheck `json:"checks,omitempty"`
}

// InfraCheck is one quality check in the guide's syntax.
type InfraCheck struct {
	Name      string   `json:"name"`
	Column    string   `json:"column,omitempty"`
	Columns   []string `json:"columns,omitempty"`
	Threshold string   `json:"threshold,omitempty"`
	Severity  string   `json:"severity,omitempty"`
	Where     string   `json:"where,omitempty"`
	// Settings are the check type's other settings (values, min, max,
	// pattern, query, ...), as written.
	Settings map[string]any `json:"-"`
}

// UnmarshalJSON keeps the settings besides the common fields.
func (c *InfraCheck) UnmarshalJSON(b []byte) error {
	type plain InfraCheck
	if err := json.Unmarshal(b, (*plain)(c)); err != nil {
		return err
	}
	var all map[string]any
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	for _, k := range []string{"name", "column", "columns", "threshold", "severity", "where"} {
		delete(all, k)
	}
	c.Settings = nil
	if len(all) > 0 {
		c.Settings = all
	}
	return nil
}

// MarshalJSON writes the settings beside the common fields.
func (c InfraCheck) MarshalJSON() ([]byte, error) {
	type plain InfraCheck
	b, err := json.Marshal(plain(c))
	if err != nil || len(c.Settings) == 0 {
		return b, err
	}
	var all map[string]any
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	for k, v := range c.Settings {
		if _, taken := all[k]; !taken {
			all[k] = v
		}
	}
	return json.Marshal(all)
}

type InfraDiscovery struct {
	Catalog       string `json:"catalog,omitempty"`
	PublishSchema bool   `json:"publish_schema,omitempty"`
	GenerateDocs  bool   `json:"generate_docs,omitempty"`
}

type InfraSecurity struct {
	AccessControl    string `json:"access_control,omitempty"`
	EncryptionAtRest bool   `json:"encryption_at_rest,omitempty"`
	AuditLogging     bool   `json:"audit_logging,omitempty"`
}

// Policy is a governance policy (guide: GlobalPolicy, DomainPolicy). Stored
// and validated; a later stage enforces Rule (a CEL expression).
type Policy struct {
	APIVersion        string         `json:"apiVersion"`
	Kind              string         `json:"kind"`
	Name              string         `json:"name"`
	Description       string         `json:"description,omitempty"`
	Scope             string         `json:"scope"` // global or domain
	Domain            string         `json:"domain,omitempty"`
	Enforcement       string         `json:"enforcement,omitempty"` // required, recommended, optional
	DomainsApplicable []string       `json:"domains_applicable,omitempty"`
	LocalEnforcement  *bool          `json:"local_enforcement,omitempty"`
	Rule              string         `json:"rule,omitempty"`
	Message           string         `json:"message,omitempty"`
	CustomProperties  map[string]any `json:"custom_properties,omitempty"`
}

// Contract is the part of an ODCS data contract that Rhizome reads itself;
// the whole document is kept as applied.
type Contract struct {
	APIVersion  string          `json:"apiVersion"`
	Kind        string          `json:"kind"`
	ID          string          `json:"id"`
	Name        string          `json:"name,omitempty"`
	Version     string          `json:"version"`
	Status      string          `json:"status"`
	Domain      string          `json:"domain,omitempty"`
	DataProduct string          `json:"dataProduct,omitempty"`
	Tags        []string        `json:"tags,omitempty"`
	Schema      json.RawMessage `json:"schema,omitempty"`
}

// Package rhizomeversion holds the build version, set with
// -ldflags "-X github.com/rhizome-mesh/rhizome/rhizomeversion.Version=v1.2.3".
package rhizomeversion

// Version is the build's version.
var Version = "dev"

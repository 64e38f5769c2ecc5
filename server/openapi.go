package server

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"sync"
)

// The OpenAPI document is openapi.json plus one fragment per area in
// openapi/*.json (quality, access, audit, data, ...), each of the form
// {"paths": {...}, "components": {"schemas": {...}}}, merged at start so
// that an area documents its routes next to its handlers' file.

//go:embed openapi/*.json
var openAPIFragments embed.FS

var (
	openAPIOnce sync.Once
	openAPIDoc  []byte
	openAPIErr  error
)

// OpenAPIDocument returns the merged OpenAPI document.
func OpenAPIDocument() ([]byte, error) {
	openAPIOnce.Do(func() { openAPIDoc, openAPIErr = mergeOpenAPI(openAPI, openAPIFragments) })
	return openAPIDoc, openAPIErr
}

func mergeOpenAPI(base []byte, frags fs.FS) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(base, &doc); err != nil {
		return nil, err
	}
	names, err := fs.Glob(frags, "openapi/*.json")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	for _, n := range names {
		raw, err := fs.ReadFile(frags, n)
		if err != nil {
			return nil, err
		}
		var frag map[string]any
		if err := json.Unmarshal(raw, &frag); err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		mergeInto(doc, frag)
	}
	return json.MarshalIndent(doc, "", "  ")
}

// mergeInto merges src into dst: objects key by key, anything else
// replaced.
func mergeInto(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeInto(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

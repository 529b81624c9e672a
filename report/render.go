package report

import (
	_ "embed"
	"encoding/json"
	"html"
	"io"
	"strings"
)

//go:embed page.html
var page string

// Render writes d as one self-contained HTML page: the data as JSON in the
// page, drawn as SVG by the page's own script (no network, no external
// assets, so the file can be mailed or attached to an issue).
func Render(w io.Writer, d *Data) error {
	b, err := json.Marshal(d) // escapes <, > and &, so "</script>" cannot occur
	if err != nil {
		return err
	}
	out := strings.Replace(page, "{{TITLE}}", html.EscapeString(d.Title), 1)
	out = strings.Replace(out, "{{DATA}}", string(b), 1)
	_, err = io.WriteString(w, out)
	return err
}

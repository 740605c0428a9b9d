package format_test

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hasession/hasession/internal/format"
)

// specPath is the format's specification, at the repository's root.
var specPath = filepath.Join("..", "..", "FORMAT.md")

// documentedFields returns the field names of FORMAT.md's field tables (the Markdown
// tables whose first column is headed "field": the first cell of each row, in
// backticks), with the line of their first mention. Rows whose first cell is not in
// backticks describe fields by what they hold (a session's tag) and name no field.
func documentedFields(t *testing.T) map[string]int {
	t.Helper()
	f, err := os.Open(specPath)
	if err != nil {
		t.Fatalf("the format's specification: %v", err)
	}
	defer f.Close()
	fields := make(map[string]int)
	inTable, tables := false, 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") {
			inTable = false
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		first := strings.TrimSpace(cells[0])
		switch {
		case first == "field":
			inTable = true
			tables++
		case !inTable, strings.HasPrefix(first, "---"):
		case len(first) > 2 && first[0] == '`' && first[len(first)-1] == '`':
			name := first[1 : len(first)-1]
			if _, ok := fields[name]; !ok {
				fields[name] = n
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if tables < 4 {
		t.Fatalf("%s has %d field tables (a first column headed \"field\"); want the session's, the forward pointer's, the tombstone's and the logins hash's", specPath, tables)
	}
	return fields
}

// codeFields returns the string constants of package format (not its tests): the name
// of each, by its value.
func codeFields(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	consts := make(map[string]string)
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					if prev, ok := consts[v]; ok {
						t.Errorf("format.%s and format.%s are both %q", prev, name.Name, v)
					}
					consts[v] = name.Name
				}
			}
		}
	}
	if len(consts) == 0 {
		t.Fatal("no string constants found in package format")
	}
	return consts
}

// FORMAT.md documents every field package format names, and package format names every
// field FORMAT.md documents.
func TestSpecificationListsTheCodesFields(t *testing.T) {
	doc, code := documentedFields(t), codeFields(t)
	for _, v := range slices.Sorted(maps.Keys(code)) {
		if _, ok := doc[v]; !ok {
			t.Errorf("format.%s (%q) is in no field table of FORMAT.md: document it", code[v], v)
		}
	}
	for _, v := range slices.Sorted(maps.Keys(doc)) {
		if _, ok := code[v]; !ok {
			t.Errorf("FORMAT.md:%d documents the field %q, which package format does not name: add a constant, or drop the row", doc[v], v)
		}
	}
}

// luaField is a string literal in a script that names a hash field: '_' and letters, or
// '#'.
var luaField = regexp.MustCompile(`'(_[A-Za-z]+|#)'`)

// Every field the scripts name is documented in FORMAT.md.
func TestSpecificationListsTheScriptsFields(t *testing.T) {
	doc := documentedFields(t)
	scripts, err := filepath.Glob(filepath.Join("..", "..", "store", "lua", "*.lua"))
	if err != nil {
		t.Fatal(err)
	}
	if len(scripts) == 0 {
		t.Fatal("no scripts found in store/lua")
	}
	for _, path := range scripts {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		seen := make(map[string]bool)
		for _, m := range luaField.FindAllStringSubmatch(string(b), -1) {
			if name := m[1]; !seen[name] {
				seen[name] = true
				if _, ok := doc[name]; !ok {
					t.Errorf("%s names the field %q, which no field table of FORMAT.md documents", filepath.Base(path), name)
				}
			}
		}
	}
}

func TestReserved(t *testing.T) {
	for name, want := range map[string]bool{
		"_A": true, "_Z": true, "_Xfoo": true, format.FormatVersion: true,
		"_": false, "_a": false, "_x": false, "_@": false, "_[": false, "A": false, ".X": false, "": false,
		format.Version: false, format.AttrPrefix: false, format.LastLogin: false,
	} {
		if got := format.Reserved(name); got != want {
			t.Errorf("Reserved(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestParseVersion(t *testing.T) {
	for v, want := range map[string]int64{"1": 1, "2": 2, "10": 10, "999999999999999999": 999999999999999999} {
		if n, ok := format.ParseVersion(v); !ok || n != want {
			t.Errorf("ParseVersion(%q) = %d, %v; want %d", v, n, ok, want)
		}
	}
	for _, v := range []string{"", "0", "01", "+1", "-1", " 1", "1 ", "1.0", "x", "1234567890123456789"} {
		if n, ok := format.ParseVersion(v); ok {
			t.Errorf("ParseVersion(%q) = %d, true; want false", v, n)
		}
	}
}

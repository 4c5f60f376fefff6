package differential

import (
	"fmt"
	"reflect"
	"strings"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/ethernet_types"
	"go.fd.io/govpp/binapi/interface_types"
)

// labels maps the sw_if_indexes one target handed out to names in creation order
// ("if1", "if2", …), so two targets that number interfaces differently still compare.
// local0 keeps its name; an index never handed out is printed as a number.
type labels struct {
	byIdx map[uint32]string
	next  int
}

func newLabels() *labels { return &labels{byIdx: map[uint32]string{0: "local0"}} }

// created names a freshly created interface. A reused index gets the new name.
func (l *labels) created(idx uint32) string {
	l.next++
	name := fmt.Sprintf("if%d", l.next)
	l.byIdx[idx] = name
	return name
}

func (l *labels) name(idx uint32) string {
	if idx == ^uint32(0) {
		return "~0"
	}
	if n, ok := l.byIdx[idx]; ok {
		return n
	}
	return fmt.Sprintf("#%d", idx)
}

// formatter renders a binapi message as one line: message name and its fields by
// their VPP names. It applies the normalizations every comparison needs (labels for
// sw_if_indexes, $DIR for the target's private directory, a placeholder for MAC
// addresses VPP draws at random, masks for values that are not behaviour such as pids
// and build dates) and the allowlisted differences (allow.go).
type formatter struct {
	labels *labels
	dir    string
	// runtimeDir is where the target resolves relative memif socket names and keeps
	// socket 0 (VPP: unix runtime-dir; vppsim: /run/vpp); printed as $RUNTIME.
	runtimeDir string
	// explicitMACs are addresses the scenario set itself; every other 02:fe:… address
	// was drawn by the target and is printed as a placeholder.
	explicitMACs map[ethernet_types.MacAddress]bool
	// raw renders allowlisted fields with their values (to tell whether an
	// allowance still hides a difference).
	raw bool
}

// masked fields: not behaviour (pids, build strings), masked for every target.
var maskedFields = map[string]string{
	"control_ping_reply.vpe_pid":         "<pid>",
	"show_version_reply.build_date":      "<date>",
	"show_version_reply.build_directory": "<dir>",
	"cli_inband_reply.reply":             "<text>", // compared by the cli step's own parse
}

func (f *formatter) msg(m api.Message) string {
	v := reflect.ValueOf(m)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	var b strings.Builder
	b.WriteString(m.GetMessageName())
	b.WriteString("{")
	f.fields(&b, m.GetMessageName(), v)
	b.WriteString("}")
	return b.String()
}

func (f *formatter) fields(b *strings.Builder, msgName string, v reflect.Value) {
	t := v.Type()
	first := true
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name := binapiName(sf)
		fv := v.Field(i)
		if fv.IsZero() && name != "retval" {
			continue // zero fields are left out to keep lines short; zero vs non-zero still differs
		}
		if !first {
			b.WriteString(" ")
		}
		first = false
		b.WriteString(name)
		b.WriteString("=")
		key := msgName + "." + name
		if m, ok := maskedFields[key]; ok {
			b.WriteString(m)
			continue
		}
		if a, ok := allowedField(key); ok && !f.raw {
			fmt.Fprintf(b, "<allowed %s>", a.Row)
			continue
		}
		f.value(b, name, fv)
	}
}

func binapiName(sf reflect.StructField) string {
	for _, part := range strings.Split(sf.Tag.Get("binapi"), ",") {
		if n, ok := strings.CutPrefix(part, "name="); ok {
			return n
		}
	}
	return sf.Name
}

var (
	ifIndexType = reflect.TypeOf(interface_types.InterfaceIndex(0))
	macType     = reflect.TypeOf(ethernet_types.MacAddress{})
	stringerT   = reflect.TypeOf((*fmt.Stringer)(nil)).Elem()
)

func (f *formatter) value(b *strings.Builder, field string, v reflect.Value) {
	switch {
	case v.Type() == ifIndexType,
		v.Kind() == reflect.Uint32 && strings.HasSuffix(field, "sw_if_index"):
		b.WriteString(f.labels.name(uint32(v.Uint())))
		return
	case v.Type() == macType:
		mac := v.Interface().(ethernet_types.MacAddress)
		if mac[0] == 0x02 && mac[1] == 0xfe && !f.explicitMACs[mac] {
			b.WriteString("02:fe:<random>")
			return
		}
		b.WriteString(mac.String())
		return
	case v.Kind() == reflect.String:
		s := v.String()
		if f.dir != "" {
			s = strings.ReplaceAll(s, f.dir, "$DIR")
		}
		if f.runtimeDir != "" {
			s = strings.ReplaceAll(s, f.runtimeDir+"/", "$RUNTIME/")
		}
		fmt.Fprintf(b, "%q", s)
		return
	case v.Kind() == reflect.Bool:
		fmt.Fprintf(b, "%v", v.Bool())
		return
	case v.Type().Implements(stringerT) && v.Kind() != reflect.Struct && v.Kind() != reflect.Slice:
		// enums and flag sets print by name, addresses in their usual notation
		fmt.Fprintf(b, "%v", v.Interface())
		return
	case v.Kind() == reflect.Struct:
		if v.Type().Implements(stringerT) {
			fmt.Fprintf(b, "%v", v.Interface())
			return
		}
		b.WriteString("{")
		f.fields(b, v.Type().Name(), v)
		b.WriteString("}")
		return
	case v.Kind() == reflect.Slice || v.Kind() == reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 && v.Kind() == reflect.Slice {
			fmt.Fprintf(b, "%x", v.Bytes())
			return
		}
		b.WriteString("[")
		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				b.WriteString(" ")
			}
			f.value(b, field, v.Index(i))
		}
		b.WriteString("]")
		return
	}
	fmt.Fprintf(b, "%v", v.Interface())
}

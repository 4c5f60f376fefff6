package vppsim

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/af_packet"
	"go.fd.io/govpp/binapi/arp"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/ip_neighbor"
	"go.fd.io/govpp/binapi/l2"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/tapv2"
	"go.fd.io/govpp/binapi/vhost_user"
	"go.fd.io/govpp/binapi/vlib"
	"go.fd.io/govpp/binapi/vpe"
	"go.fd.io/govpp/codec"
)

// memclntOrder is the order of memclnt.api, which VPP registers first: govpp hard-codes
// sockclnt_create as message id 15, so the first ids must match VPP exactly.
var memclntOrder = []string{
	"memclnt_create", "memclnt_create_reply", "memclnt_delete", "memclnt_delete_reply",
	"rx_thread_exit", "memclnt_rx_thread_suspend", "memclnt_read_timeout", "rpc_call",
	"rpc_call_reply", "get_first_msg_id", "get_first_msg_id_reply", "api_versions",
	"api_versions_reply", "trace_plugin_msg_ids", "sockclnt_create", "sockclnt_create_reply",
	"sockclnt_delete", "sockclnt_delete_reply", "sock_init_shm", "sock_init_shm_reply",
	"memclnt_keepalive", "memclnt_keepalive_reply", "control_ping", "control_ping_reply",
	"get_api_json", "get_api_json_reply", "memclnt_create_v2", "memclnt_create_v2_reply",
}

// sockclntCreateID is the id govpp's socketclient sends the handshake with.
const sockclntCreateID = 15

// msgEntry is one row of the message table.
type msgEntry struct {
	id    uint16
	name  string // without CRC
	crc   string
	typ   reflect.Type // element type of the generated struct
	reply *msgEntry    // reply of a request ("foo" -> "foo_reply"), nil for dumps and others
	// details is set for dump requests ("foo_dump" -> "foo_details").
	details *msgEntry
}

func (e *msgEntry) new() api.Message {
	return reflect.New(e.typ).Interface().(api.Message)
}

// msgTable maps ids and names to the generated govpp message types vppsim serves.
type msgTable struct {
	byID   []*msgEntry // index = id; 0 is unused as in VPP
	byName map[string]*msgEntry
}

// newMsgTable builds the table from govpp's generated binapi packages. The table is
// immutable after construction and shared by every client.
func newMsgTable() (*msgTable, error) {
	t := &msgTable{byID: []*msgEntry{nil}, byName: map[string]*msgEntry{}}
	mem := map[string]api.Message{}
	for _, m := range memclnt.AllMessages() {
		mem[m.GetMessageName()] = m
	}
	for _, name := range memclntOrder {
		m, ok := mem[name]
		if !ok {
			return nil, fmt.Errorf("memclnt message %q missing from govpp bindings", name)
		}
		t.add(m)
		delete(mem, name)
	}
	for _, m := range memclnt.AllMessages() {
		if _, left := mem[m.GetMessageName()]; left {
			t.add(m)
		}
	}
	if t.byName["sockclnt_create"].id != sockclntCreateID {
		return nil, fmt.Errorf("sockclnt_create got id %d, want %d", t.byName["sockclnt_create"].id, sockclntCreateID)
	}
	for _, all := range [][]api.Message{
		vpe.AllMessages(), vlib.AllMessages(), interfaces.AllMessages(), ip.AllMessages(), ip_neighbor.AllMessages(), arp.AllMessages(),
		l2.AllMessages(), memif.AllMessages(), vhost_user.AllMessages(), tapv2.AllMessages(),
		af_packet.AllMessages(),
	} {
		for _, m := range all {
			t.add(m)
		}
	}
	for name, e := range t.byName {
		if strings.HasSuffix(name, "_dump") {
			e.details = t.byName[strings.TrimSuffix(name, "_dump")+"_details"]
			continue
		}
		e.reply = t.byName[name+"_reply"]
	}
	return t, nil
}

func (t *msgTable) add(m api.Message) {
	name := m.GetMessageName()
	if _, dup := t.byName[name]; dup {
		return
	}
	e := &msgEntry{
		id:   uint16(len(t.byID)),
		name: name,
		crc:  m.GetCrcString(),
		typ:  reflect.TypeOf(m).Elem(),
	}
	t.byID = append(t.byID, e)
	t.byName[name] = e
}

func (t *msgTable) lookupID(id uint16) *msgEntry {
	if int(id) >= len(t.byID) {
		return nil
	}
	return t.byID[id]
}

// entryOf returns the table row of a generated message value.
func (t *msgTable) entryOf(m api.Message) *msgEntry {
	return t.byName[m.GetMessageName()]
}

// wireTable is the sockclnt_create_reply message table.
func (t *msgTable) wireTable() []memclnt.MessageTableEntry {
	out := make([]memclnt.MessageTableEntry, 0, len(t.byID)-1)
	for _, e := range t.byID[1:] {
		out = append(out, memclnt.MessageTableEntry{Index: e.id, Name: e.name + "_" + e.crc})
	}
	return out
}

// encode serialises m with govpp's codec and fills in the header fields the codec leaves
// to the transport: context for replies, client index (and context for the
// request-shaped sockclnt_create_reply) otherwise.
func (t *msgTable) encode(m api.Message, clientIndex, context uint32) ([]byte, error) {
	e := t.entryOf(m)
	if e == nil {
		return nil, fmt.Errorf("message %s not in table", m.GetMessageName())
	}
	data, err := codec.DefaultCodec.EncodeMsg(m, e.id)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", e.name, err)
	}
	switch m.GetMessageType() {
	case api.ReplyMessage:
		binary.BigEndian.PutUint32(data[2:6], context)
	case api.RequestMessage:
		binary.BigEndian.PutUint32(data[2:6], clientIndex)
		binary.BigEndian.PutUint32(data[6:10], context)
	case api.EventMessage:
		binary.BigEndian.PutUint32(data[2:6], clientIndex)
	}
	return data, nil
}

// setRetval sets the Retval field that nearly every VPP reply carries first after the
// context; it reports whether the message has one.
func setRetval(m api.Message, retval int32) bool {
	v := reflect.ValueOf(m)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return false
	}
	f := v.Elem().FieldByName("Retval")
	if !f.IsValid() || f.Kind() != reflect.Int32 || !f.CanSet() {
		return false
	}
	f.SetInt(int64(retval))
	return true
}

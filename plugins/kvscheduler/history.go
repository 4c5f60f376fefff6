package kvscheduler

import "time"

// History keeps the last transactions with every operation. A bulk apply of
// 10k cross-connects leaves 50k operations in it, so history stores them
// packed (about 48 bytes instead of a 104-byte Op) and History expands them.

// pastTxn is a TxnRecord as history keeps it; rec.Ops is nil.
type pastTxn struct {
	rec TxnRecord
	ops []pastOp
}

type pastOp struct {
	key            string
	err            string
	dur            time.Duration
	kind, prev     uint8
	next           uint8
	derived, retry bool
}

func kindCode(k OpKind) uint8 {
	switch k {
	case OpUpdate:
		return 1
	case OpRecreate:
		return 2
	case OpDelete:
		return 3
	default:
		return 0
	}
}

func codeKind(c uint8) OpKind {
	switch c {
	case 1:
		return OpUpdate
	case 2:
		return OpRecreate
	case 3:
		return OpDelete
	default:
		return OpCreate
	}
}

// The states an Op can show, by code. Op states are always one of these
// constants; anything else would be reported as NONEXISTENT.
func stateCode(s State) uint8 {
	switch s {
	case StatePending:
		return 1
	case StateConfigured:
		return 2
	case StateFailed:
		return 3
	case StateInvalid:
		return 4
	case StateObtained:
		return 5
	case StateRemoved:
		return 6
	default:
		return 0
	}
}

func codeState(c uint8) State {
	switch c {
	case 1:
		return StatePending
	case 2:
		return StateConfigured
	case 3:
		return StateFailed
	case 4:
		return StateInvalid
	case 5:
		return StateObtained
	case 6:
		return StateRemoved
	default:
		return StateNonexistent
	}
}

func packTxn(rec TxnRecord) pastTxn {
	p := pastTxn{rec: rec, ops: make([]pastOp, len(rec.Ops))}
	p.rec.Ops = nil
	for i, o := range rec.Ops {
		p.ops[i] = pastOp{key: o.Key, err: o.Error, dur: o.Duration, kind: kindCode(o.Op),
			prev: stateCode(o.PrevState), next: stateCode(o.NewState), derived: o.Derived, retry: o.Retry}
	}
	return p
}

func (p *pastTxn) unpack() TxnRecord {
	rec := p.rec
	rec.Ops = make([]Op, len(p.ops))
	for i, o := range p.ops {
		rec.Ops[i] = Op{Key: o.key, Op: codeKind(o.kind), Derived: o.derived, PrevState: codeState(o.prev),
			NewState: codeState(o.next), Error: o.err, Retry: o.retry, Duration: o.dur}
	}
	return rec
}

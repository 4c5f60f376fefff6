// Package statseg serves VPP's stats segment (format version 2) from vppsim: a
// memfd laid out as VPP lays it out, handed to clients over a unix socket with
// SCM_RIGHTS, so govpp's statsclient reads per-interface counters from vppsim
// exactly as it reads them from VPP.
//
// The owner publishes full snapshots of its interfaces; statseg keeps the
// vectors, the names and the epoch/in_progress protocol that readers rely on:
//
//	seg, err := statseg.New("/run/vpp/stats.sock")
//	if err != nil {
//		return err
//	}
//	defer seg.Close()
//	err = seg.Update([]statseg.InterfaceCounters{
//		{SwIfIndex: 0, Name: "local0"},
//		{SwIfIndex: 1, Name: "memif1/0", Rx: statseg.Pair{Packets: 10, Bytes: 640}},
//	})
package statseg

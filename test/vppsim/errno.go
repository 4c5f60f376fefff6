package vppsim

// Return values from VPP's src/vnet/api_errno.h that vppsim hands out; the numbers are
// the wire values the agent sees.
const (
	errUnspecified       int32 = -1
	errInvalidSwIfIndex  int32 = -2
	errNoSuchEntry       int32 = -6
	errInvalidValue      int32 = -7
	errInvalidValue2     int32 = -8
	errUnimplemented     int32 = -9
	errInvalidSwIfIndex2 int32 = -10
	errSyscallError1     int32 = -11
	errInvalidInterface  int32 = -71
	errInvalidArgument   int32 = -73
	errIfAlreadyExists   int32 = -79
	errValueExist        int32 = -81
	errAddressInUse      int32 = -105
	errAddressNotInUse   int32 = -106
	// errAddressNotFoundForInterface is what sw_interface_add_del_address answers for
	// deleting an address the interface does not have.
	errAddressNotFoundForInterface int32 = -60
	errEntryAlreadyExists          int32 = -116
	errBDAlreadyExists             int32 = -119
	errBDInUse                     int32 = -120
	errBDNotModifiable             int32 = -121
	errBDIDExceedMax               int32 = -122
)

const (
	errSubifAlreadyExists  int32 = -68
	errUnexpectedIntfState int32 = -74
	errInstanceInUse       int32 = -147
)

const (
	errBDAlreadyHasBVI     int32 = -152
	errInvalidRegistration int32 = -31
)

// bdIDMax is L2_BD_ID_MAX: bridge domain ids are 24 bits in VPP.
const bdIDMax = 1<<24 - 1

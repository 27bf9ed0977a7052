package link

import "unsafe"

// sizeofPtr is the size of size_t in this process's C ABI, which lays out
// control messages (cmsghdr).
const sizeofPtr = int(unsafe.Sizeof(uintptr(0)))

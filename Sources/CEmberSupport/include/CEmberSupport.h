#ifndef CEMBER_SUPPORT_H
#define CEMBER_SUPPORT_H

/// Whether autograd records operations on the calling thread (1 by default).
int ember_grad_enabled(void);
/// Sets the calling thread's grad mode and returns the previous one.
int ember_set_grad_enabled(int enabled);

#endif

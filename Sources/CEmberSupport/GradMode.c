#include "CEmberSupport.h"

// Per thread, so in-process ranks (threads) can be in different modes at once.
static _Thread_local int grad_enabled = 1;

int ember_grad_enabled(void) { return grad_enabled; }

int ember_set_grad_enabled(int enabled) {
    int previous = grad_enabled;
    grad_enabled = enabled;
    return previous;
}

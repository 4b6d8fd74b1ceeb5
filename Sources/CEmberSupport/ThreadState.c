#include "CEmberSupport.h"

// Per thread, so in-process ranks (threads) can be in different modes at once.
static _Thread_local int grad_enabled = 1;

int ember_grad_enabled(void) { return grad_enabled; }

int ember_set_grad_enabled(int enabled) {
    int previous = grad_enabled;
    grad_enabled = enabled;
    return previous;
}

// The backward pass running on this thread (an Ember BackwardRun, unretained), for callbacks
// queued during it.
static _Thread_local void *current_backward = 0;

void *ember_current_backward(void) { return current_backward; }

void *ember_set_current_backward(void *run) {
    void *previous = current_backward;
    current_backward = run;
    return previous;
}

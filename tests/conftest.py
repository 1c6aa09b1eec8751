"""Test-session settings shared by every test."""

import torch

# Small tensors gain nothing from intra-op threads, and on a busy 2-core machine a second thread
# makes every parallel operation wait for a descheduled one; one thread keeps timings steady.
torch.set_num_threads(1)

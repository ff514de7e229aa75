mod batched_loss_window;
mod power_loss_sweep;

mod bad_input;
mod bit_flip_sweep;
mod damage_matrix;
mod prop_damage;
mod reconciliation;
mod repair;
mod truncation_sweep;
mod zero_sector_sweep;

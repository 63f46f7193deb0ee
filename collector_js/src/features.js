// Telemetry feature set v1: names, documented ranges [lo, hi] and output decimals.
// Mirrors sidecar/features.py (the source of truth); tests/test_extract_parity.py
// checks that the two tables agree.  Each modality: `min` = fewest events the sidecar
// accepts, `f` = name -> [lo, hi, decimals] in wire order.
export const FEATURES = {
  keys: { min: 10, f: {
    hold_mean: [0, 2000, 1], // ms, key down -> up
    hold_std: [0, 1000, 1], // ms
    dd_mean: [0, 5000, 1], // ms, down -> next down
    dd_std: [0, 5000, 1], // ms
    ud_mean: [-2000, 5000, 1], // ms, up -> next down (may be negative)
    ud_std: [0, 5000, 1], // ms
    rate: [0, 40, 2], // keys/s within bursts
    pause_ratio: [0, 1, 3], // share of down->down gaps > 500 ms
    backspace_ratio: [0, 1, 3], // share of keydowns that are Backspace/Delete
  } },
  mouse: { min: 20, f: {
    speed_mean: [0, 20, 4], // px/ms
    speed_std: [0, 20, 4], // px/ms
    accel_mean: [0, 10, 5], // px/ms²
    accel_std: [0, 10, 5], // px/ms²
    straightness: [0, 1, 3], // chord/path per stroke
    curvature_mean: [0, 10, 4], // rad/px
    hesitation_mean: [0, 10000, 1], // ms still before a click
    click_hold_mean: [0, 5000, 1], // ms
  } },
  scroll: { min: 5, f: {
    speed_mean: [0, 50, 4], // px/ms
    speed_std: [0, 50, 4], // px/ms
    delta_mean: [0, 5000, 1], // px/event
    burst_len_mean: [1, 1000, 2], // events/burst
    dir_change_ratio: [0, 1, 3], // ratio
  } },
  touch: { min: 5, f: {
    swipe_speed_mean: [0, 20, 4], // px/ms
    swipe_speed_std: [0, 20, 4], // px/ms
    swipe_duration_mean: [0, 5000, 1], // ms
    swipe_straightness: [0, 1, 3], // ratio
    pressure_mean: [0, 1, 3], // ratio
    pressure_std: [0, 1, 3], // ratio
    contact_mean: [0, 10000, 1], // px²
    multi_touch_ratio: [0, 1, 3], // ratio
  } },
};

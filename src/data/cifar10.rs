//! Facts about CIFAR-10 that every reader of it shares: the record layout, the image size
//! and the ten classes. A leaf: it imports nothing, so the readers, the errors and fetch
//! can all use it without importing `data/mod.rs`.

/// Bytes per CIFAR-10 binary record: one label byte and 32 x 32 x 3 pixels.
pub(crate) const CIFAR10_RECORD: usize = 1 + CIFAR10_DIM;
/// Input dimension of a CIFAR-10 image.
pub(crate) const CIFAR10_DIM: usize = 3072;
/// Number of classes of CIFAR-10 (both of its formats). Other data sets have their own
/// count, [`crate::data::Dataset::classes`].
pub const NUM_CLASSES: usize = 10;
/// CIFAR-10's class names, in label order.
pub const CIFAR10_CLASSES: [&str; NUM_CLASSES] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

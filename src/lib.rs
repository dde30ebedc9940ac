pub mod cifar_python;
pub mod fetch;

pub mod kubesim;

//! The jwtgrant client SDK (being written).

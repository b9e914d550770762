//! How [`RunPk`] and [`TiId`] are bound and read: as the BIGINT column they are, so a query
//! binds an id and reads one back typed, never as a bare `i64`.

use sqlx::any::{Any, AnyTypeInfo};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

use crate::model::{RunPk, TiId};

macro_rules! bigint_id {
    ($name:ident) => {
        impl Type<Any> for $name {
            fn type_info() -> AnyTypeInfo {
                <i64 as Type<Any>>::type_info()
            }

            fn compatible(ty: &AnyTypeInfo) -> bool {
                <i64 as Type<Any>>::compatible(ty)
            }
        }

        impl<'q> Encode<'q, Any> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <Any as Database>::ArgumentBuffer<'q>,
            ) -> Result<IsNull, BoxDynError> {
                <i64 as Encode<'q, Any>>::encode_by_ref(&self.0, buf)
            }
        }

        impl<'r> Decode<'r, Any> for $name {
            fn decode(value: <Any as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                Ok($name(<i64 as Decode<'r, Any>>::decode(value)?))
            }
        }
    };
}

bigint_id!(RunPk);
bigint_id!(TiId);

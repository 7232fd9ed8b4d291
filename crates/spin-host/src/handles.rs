//! Guest-visible resources carry the placeholder types of `host_world` (the bindings know no
//! host type); the store's resource table holds the host's own handle behind the same number.
//! These convert between the two at the table, which checks the handle's type on every access,
//! so a resource of one interface can never be read as another's.

use std::any::Any;

use wasmtime::component::{Resource, ResourceTable, ResourceTableError};

/// A resource table holding host handles for guest resources of another (placeholder) type.
pub trait HandleTable {
    /// Stores `handle` and returns the guest's resource for it.
    fn push_handle<Guest: 'static, Handle: Send + 'static>(&mut self, handle: Handle) -> Result<Resource<Guest>, ResourceTableError>;
    /// The handle behind `resource`.
    fn handle<Guest: 'static, Handle: Any>(&self, resource: &Resource<Guest>) -> Result<&Handle, ResourceTableError>;
    /// The handle behind `resource`, to change.
    fn handle_mut<Guest: 'static, Handle: Any>(&mut self, resource: &Resource<Guest>) -> Result<&mut Handle, ResourceTableError>;
    /// Removes the handle behind `resource` (the guest dropped it).
    fn delete_handle<Guest: 'static, Handle: Any>(&mut self, resource: Resource<Guest>) -> Result<Handle, ResourceTableError>;
}

impl HandleTable for ResourceTable {
    fn push_handle<Guest: 'static, Handle: Send + 'static>(&mut self, handle: Handle) -> Result<Resource<Guest>, ResourceTableError> {
        Ok(Resource::new_own(self.push(handle)?.rep()))
    }

    fn handle<Guest: 'static, Handle: Any>(&self, resource: &Resource<Guest>) -> Result<&Handle, ResourceTableError> {
        self.get(&Resource::<Handle>::new_borrow(resource.rep()))
    }

    fn handle_mut<Guest: 'static, Handle: Any>(&mut self, resource: &Resource<Guest>) -> Result<&mut Handle, ResourceTableError> {
        self.get_mut(&Resource::<Handle>::new_borrow(resource.rep()))
    }

    fn delete_handle<Guest: 'static, Handle: Any>(&mut self, resource: Resource<Guest>) -> Result<Handle, ResourceTableError> {
        self.delete(Resource::<Handle>::new_own(resource.rep()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    enum GuestThing {}
    struct HostThing(u32);
    struct OtherHostThing;

    #[test]
    fn a_handle_is_found_by_its_own_type_only() {
        let mut table = ResourceTable::new();
        let resource: Resource<GuestThing> = table.push_handle(HostThing(7)).unwrap();
        assert_eq!(table.handle::<_, HostThing>(&resource).unwrap().0, 7);
        table.handle_mut::<_, HostThing>(&resource).unwrap().0 = 8;
        assert!(matches!(table.handle::<_, OtherHostThing>(&resource), Err(ResourceTableError::WrongType)));
        assert_eq!(table.delete_handle::<_, HostThing>(resource).unwrap().0, 8);
    }
}

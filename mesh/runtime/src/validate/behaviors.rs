//! `google.api.field_behavior` (AIP-203) for [`super::RequestRules`]: the values of every field,
//! read once at startup, and what they demand of a request: OUTPUT_ONLY fields cleared, REQUIRED
//! fields set (for an update, those its mask names), IMMUTABLE fields never named in a mask.

use std::collections::HashMap;

use prost_reflect::{DescriptorPool, DynamicMessage, FieldDescriptor, Kind, ReflectMessage, Value};

/// `google.api.FieldBehavior` values this module acts on.
pub mod behavior {
    /// Must be set by the client.
    pub const REQUIRED: i32 = 2;
    /// Set by the server only; ignored on input.
    pub const OUTPUT_ONLY: i32 = 3;
    /// Set on create, never changed.
    pub const IMMUTABLE: i32 = 5;
}

/// The `google.api.field_behavior` values of `field`.
pub fn field_behaviors(field: &FieldDescriptor) -> Vec<i32> {
    let Some(extension) = field
        .parent_pool()
        .get_extension_by_name("google.api.field_behavior")
    else {
        return Vec::new();
    };
    let options = field.options();
    if !options.has_extension(&extension) {
        return Vec::new();
    }
    match options.get_extension(&extension).as_ref() {
        Value::List(values) => values.iter().filter_map(Value::as_enum_number).collect(),
        _ => Vec::new(),
    }
}

/// Whether `field` carries `behavior`.
pub fn has_behavior(field: &FieldDescriptor, behavior: i32) -> bool {
    field_behaviors(field).contains(&behavior)
}

/// The `google.api.field_behavior` values of every field of a descriptor set, read once at startup
/// so that checking a request reads no options.
#[derive(Debug, Default)]
pub(super) struct Behaviors(HashMap<String, Vec<i32>>);

impl Behaviors {
    pub(super) fn of(pool: &DescriptorPool) -> Self {
        let mut behaviors = HashMap::new();
        for message in pool.all_messages() {
            for field in message.fields() {
                let values = field_behaviors(&field);
                if !values.is_empty() {
                    behaviors.insert(field.full_name().to_owned(), values);
                }
            }
        }
        Self(behaviors)
    }

    fn has(&self, field: &FieldDescriptor, behavior: i32) -> bool {
        self.0
            .get(field.full_name())
            .is_some_and(|values| values.contains(&behavior))
    }

    /// Clears every OUTPUT_ONLY field, at any depth; true when one was set.
    pub(super) fn clear_output_only(&self, message: &mut DynamicMessage) -> bool {
        let mut cleared = false;
        for field in message.descriptor().fields() {
            if !message.has_field(&field) {
                continue;
            }
            if self.has(&field, behavior::OUTPUT_ONLY) {
                message.clear_field(&field);
                cleared = true;
                continue;
            }
            if !matches!(field.kind(), Kind::Message(_)) || field.is_map() {
                continue;
            }
            match message.get_field_mut(&field) {
                Value::Message(inner) => cleared |= self.clear_output_only(inner),
                Value::List(items) => {
                    for item in items {
                        if let Value::Message(inner) = item {
                            cleared |= self.clear_output_only(inner);
                        }
                    }
                }
                _ => {}
            }
        }
        cleared
    }

    /// REQUIRED fields of `message` and of the messages it holds that are unset. `replacing`:
    /// `message` is a resource whose update replaces it, so its IMMUTABLE fields (kept as they
    /// are) need no value.
    pub(super) fn required_fields(
        &self,
        message: &DynamicMessage,
        prefix: &str,
        replacing: bool,
        out: &mut Vec<(String, String)>,
    ) {
        for field in message.descriptor().fields() {
            if !message.has_field(&field) {
                if self.has(&field, behavior::REQUIRED)
                    && !(replacing && self.has(&field, behavior::IMMUTABLE))
                {
                    out.push((join(prefix, field.name()), "is required".to_owned()));
                }
                continue;
            }
            let Kind::Message(kind) = field.kind() else {
                continue;
            };
            if field.is_map() || kind.package_name() == "google.protobuf" {
                continue;
            }
            let path = join(prefix, field.name());
            match message.get_field(&field).as_ref() {
                Value::Message(inner) => self.required_fields(inner, &path, false, out),
                Value::List(items) => {
                    for (index, item) in items.iter().enumerate() {
                        if let Value::Message(inner) = item {
                            self.required_fields(inner, &format!("{path}[{index}]"), false, out);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// An update (AIP-134): the request's own REQUIRED fields, and for each field the mask names
    /// (`masked`, from [`masked_fields`]): set if REQUIRED, never IMMUTABLE. Without a mask (or
    /// with `*`, `masked` is `None`) the update replaces every updatable field, so every REQUIRED
    /// field of the resource that is not IMMUTABLE must be set. (The resource's name is the
    /// handler's to read: some updates act on the caller's own resource.)
    pub(super) fn update_fields(
        &self,
        request: &DynamicMessage,
        resource_field: &FieldDescriptor,
        masked: Option<&[FieldDescriptor]>,
        out: &mut Vec<(String, String)>,
    ) {
        for field in request.descriptor().fields() {
            if field != *resource_field
                && !request.has_field(&field)
                && self.has(&field, behavior::REQUIRED)
            {
                out.push((field.name().to_owned(), "is required".to_owned()));
            }
        }
        if !request.has_field(resource_field) {
            out.push((resource_field.name().to_owned(), "is required".to_owned()));
            return;
        }
        let Value::Message(resource) = request.get_field(resource_field).into_owned() else {
            return;
        };
        let Some(masked) = masked else {
            self.required_fields(&resource, resource_field.name(), true, out);
            return;
        };
        for field in masked {
            let at = join(resource_field.name(), field.name());
            if self.has(field, behavior::IMMUTABLE) {
                out.push((
                    at,
                    "is immutable: it is set on create and cannot be updated".to_owned(),
                ));
            } else if self.has(field, behavior::REQUIRED) && !resource.has_field(field) {
                out.push((at, "is required".to_owned()));
            }
        }
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// The resource's top-level fields an update request's mask names (by proto or JSON name; a path
/// naming none is left out), each once; `None` when the update covers the whole resource (no mask,
/// or `*`).
pub(super) fn masked_fields(
    request: &DynamicMessage,
    resource_field: &FieldDescriptor,
    mask_field: &FieldDescriptor,
) -> Option<Vec<FieldDescriptor>> {
    let Value::Message(mask) = request.get_field(mask_field).into_owned() else {
        return None;
    };
    let paths: Vec<String> = mask
        .get_field_by_name("paths")
        .and_then(|paths| {
            paths.as_list().map(|list| {
                list.iter()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default();
    if paths.is_empty() || paths.iter().any(|p| p == "*") {
        return None;
    }
    let Kind::Message(descriptor) = resource_field.kind() else {
        return None;
    };
    let mut fields: Vec<FieldDescriptor> = Vec::new();
    for path in &paths {
        let top = path.split('.').next().unwrap_or(path);
        if let Some(field) = descriptor
            .get_field_by_name(top)
            .or_else(|| descriptor.get_field_by_json_name(top))
            && !fields.contains(&field)
        {
            fields.push(field);
        }
    }
    Some(fields)
}

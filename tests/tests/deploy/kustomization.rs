//! The kustomization: it ties every manifest together (resources, generated ConfigMaps,
//! namespace), and the images it sets are the ones the manifests and deploy/README.md use.

use super::*;

pub(crate) fn kustomization_ties_everything_together() {
    let d = deploy();
    let k = d.kustomization();
    let namespace = d.namespace();
    let resources = d.kustomize_files("resources");
    let configurations = d.kustomize_files("configurations");
    let mut problems = Problems::default();
    #[rustfmt::skip]
    problems.agree(d, &[
        ("Kustomization /namespace", "=mp3edge", "the namespace of deploy/README.md and of KEDA's Redis address"),
        ("Namespace /metadata/name", "Kustomization /namespace", "the kustomization puts everything in the Namespace it creates"),
    ]);
    let generated = d.generated_config_maps().into_values().flat_map(BTreeMap::into_values);
    for file in resources.iter().chain(&configurations).cloned().chain(generated) {
        problems.check(d.root.join(&file).is_file(), format!("{}: {file} does not exist", k.file));
    }
    // Every manifest is applied, except the templates, the HPA alternative and kustomize's own.
    for file in &d.yaml_files {
        let optional = file.ends_with(".example.yaml") || file == "deploy/worker/hpa.yaml";
        let own = file == &k.file || configurations.contains(file);
        let problem = match optional {
            true => format!("{}: {file} must not be a resource (a template; or the HPA, which would fight KEDA's)", k.file),
            false => format!("{file} is not in the resources of {}", k.file),
        };
        problems.check(own || resources.contains(file) != optional, problem);
    }
    for kind in ["Namespace", "SpinApp", "Deployment", "StatefulSet", "Service", "ScaledObject"] {
        problems.check(d.of_kind(kind).any(|doc| resources.contains(&doc.file)), format!("{}: no {kind} among the resources", k.file));
    }
    for doc in &d.docs {
        let ns = doc.str("/metadata/namespace");
        problems.check(ns.is_none_or(|ns| ns == namespace), format!("{}: metadata.namespace {ns:?} is not {namespace:?}", doc.what()));
    }
    problems.report("deploy/kustomization.yaml");
}

/// `name` and tag of an image reference (`registry:5000/a/b:tag`).
pub(crate) fn split_image(image: &str) -> (&str, Option<&str>) {
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].rfind(':') {
        Some(colon) => (&image[..slash + colon], Some(&image[slash + colon + 1..])),
        None => (image, None),
    }
}

pub(crate) fn images_agree_with_kustomization_and_readme() {
    let d = deploy();
    let k = d.kustomization();
    let readme = d.read("deploy/README.md");
    let mut problems = Problems::default();
    // images entries: name -> (newName, newTag).
    let entries: BTreeMap<&str, (Option<&str>, Option<&str>)> =
        items(&k.value, "/images").iter().map(|e| (text(e, "/name").unwrap_or(""), (text(e, "/newName"), text(e, "/newTag")))).collect();
    let worker_image = d.worker_container().image.unwrap_or_default();
    let spinapp = d.only("SpinApp", "");
    let images = [
        (format!("{} (worker image)", d.worker().what()), worker_image.as_str(), format!("docker build -f {DOCKERFILE} -t ")),
        (format!("{} (edge image)", spinapp.what()), spinapp.str("/spec/image").unwrap_or(""), "spin registry push ".to_string()),
    ];
    for (what, image, how) in &images {
        let (name, tag) = split_image(image);
        let Some(tag) = tag else {
            problems.push(format!("{what}: {image} has no tag"));
            continue;
        };
        let Some((new_name, new_tag)) = entries.get(name) else {
            problems.push(format!("{}: no images entry named {name} (for {what})", k.file));
            continue;
        };
        problems.check(new_tag.is_none_or(|t| t == tag), format!("{}: images {name} newTag {new_tag:?} is not {what}'s tag {tag}", k.file));
        let command = format!("{how}{}:{}", new_name.unwrap_or(name), new_tag.unwrap_or(tag));
        problems.check(readme.contains(&command), format!("deploy/README.md does not show `{command}` (the image {what} uses)"));
    }
    for name in entries.keys().filter(|name| !images.iter().any(|(_, i, _)| split_image(i).0 == **name)) {
        problems.push(format!("{}: images entry {name} matches no image of the worker or the edge", k.file));
    }
    problems.check(readme.contains("kubectl apply -k deploy/"), "deploy/README.md does not show `kubectl apply -k deploy/`".into());
    problems.report("Images");
}

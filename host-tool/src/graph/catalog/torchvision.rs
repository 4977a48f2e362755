//! Spec text for torchvision's `resnet18`, `mobilenet_v2`, `vgg11_bn` and `vgg16`, generated from
//! torchvision's configuration tables so that every module name is torchvision's own.
//! Parameter-free modules (`relu`) are written as functions: they have no state_dict keys.

use std::fmt::Write;

/// Accumulates the `__init__` part and the `forward` part of a spec.
struct SpecText {
    decls: String,
    forward: String,
}

impl SpecText {
    fn new(comment: &str, input: &str) -> SpecText {
        SpecText {
            decls: format!("# {comment}\ninput x: {input}\n\n"),
            forward: String::new(),
        }
    }

    fn decl(&mut self, name: &str, module: &str) {
        let _ = writeln!(self.decls, "{name} = {module}");
    }

    fn step(&mut self, line: &str) {
        let _ = writeln!(self.forward, "    {line}");
    }

    fn finish(self) -> String {
        format!("{}\nforward:\n{}", self.decls, self.forward)
    }
}

/// `torchvision.models.resnet18()`: BasicBlocks [2, 2, 2, 2].
pub fn resnet18() -> String {
    let mut s = SpecText::new("torchvision resnet18", "[3, 224, 224]");
    s.decl(
        "conv1",
        "Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)",
    );
    s.decl("bn1", "BatchNorm2d(64)");
    s.decl("maxpool", "MaxPool2d(kernel_size=3, stride=2, padding=1)");
    s.step("x = maxpool(relu(bn1(conv1(x))))");
    let mut cin = 64;
    for (layer, planes) in [64, 128, 256, 512].into_iter().enumerate() {
        for block in 0..2 {
            let stride = if layer > 0 && block == 0 { 2 } else { 1 };
            let p = format!("layer{}.{block}", layer + 1);
            s.decl(&format!("{p}.conv1"), &format!("Conv2d({cin}, {planes}, kernel_size=3, stride={stride}, padding=1, bias=False)"));
            s.decl(&format!("{p}.bn1"), &format!("BatchNorm2d({planes})"));
            s.decl(
                &format!("{p}.conv2"),
                &format!(
                    "Conv2d({planes}, {planes}, kernel_size=3, stride=1, padding=1, bias=False)"
                ),
            );
            s.decl(&format!("{p}.bn2"), &format!("BatchNorm2d({planes})"));
            s.step(&format!("y = relu({p}.bn1({p}.conv1(x)))"));
            s.step(&format!("y = {p}.bn2({p}.conv2(y))"));
            if stride != 1 || cin != planes {
                s.decl(
                    &format!("{p}.downsample.0"),
                    &format!("Conv2d({cin}, {planes}, kernel_size=1, stride={stride}, bias=False)"),
                );
                s.decl(
                    &format!("{p}.downsample.1"),
                    &format!("BatchNorm2d({planes})"),
                );
                s.step(&format!(
                    "x = relu(y + {p}.downsample.1({p}.downsample.0(x)))"
                ));
            } else {
                s.step("x = relu(y + x)");
            }
            cin = planes;
        }
    }
    s.decl("avgpool", "AdaptiveAvgPool2d((1, 1))");
    s.decl("fc", "Linear(512, 1000)");
    s.step("x = flatten(avgpool(x), 1)");
    s.step("return fc(x)");
    s.finish()
}

/// `torchvision.models.mobilenet_v2()`: inverted residuals, ReLU6, width 1.0.
pub fn mobilenet_v2() -> String {
    let mut s = SpecText::new("torchvision mobilenet_v2", "[3, 224, 224]");
    // Conv2dNormActivation: `<p>.0` conv, `<p>.1` BatchNorm, then ReLU6.
    let conv_bn_relu6 = |s: &mut SpecText,
                         p: &str,
                         cin: usize,
                         cout: usize,
                         k: usize,
                         stride: usize,
                         groups: usize| {
        s.decl(&format!("{p}.0"), &format!("Conv2d({cin}, {cout}, {k}, stride={stride}, padding={}, groups={groups}, bias=False)", (k - 1) / 2));
        s.decl(&format!("{p}.1"), &format!("BatchNorm2d({cout})"));
        s.step(&format!("x = relu6({p}.1({p}.0(x)))"));
    };
    conv_bn_relu6(&mut s, "features.0", 3, 32, 3, 2, 1);
    let settings = [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ];
    let (mut cin, mut index) = (32, 1);
    for (t, c, n, first_stride) in settings {
        for i in 0..n {
            let stride = if i == 0 { first_stride } else { 1 };
            let hidden = cin * t;
            let p = format!("features.{index}.conv");
            let residual = stride == 1 && cin == c;
            if residual {
                s.step("r = x");
            }
            let mut part = 0;
            if t != 1 {
                conv_bn_relu6(&mut s, &format!("{p}.0"), cin, hidden, 1, 1, 1);
                part = 1;
            }
            conv_bn_relu6(
                &mut s,
                &format!("{p}.{part}"),
                hidden,
                hidden,
                3,
                stride,
                hidden,
            );
            let (pw, bn) = (format!("{p}.{}", part + 1), format!("{p}.{}", part + 2));
            s.decl(&pw, &format!("Conv2d({hidden}, {c}, 1, bias=False)"));
            s.decl(&bn, &format!("BatchNorm2d({c})"));
            s.step(&if residual {
                format!("x = r + {bn}({pw}(x))")
            } else {
                format!("x = {bn}({pw}(x))")
            });
            cin = c;
            index += 1;
        }
    }
    conv_bn_relu6(&mut s, &format!("features.{index}"), cin, 1280, 1, 1, 1);
    s.decl("classifier.0", "Dropout(p=0.2)");
    s.decl("classifier.1", "Linear(1280, 1000)");
    s.step("x = flatten(adaptive_avg_pool2d(x, (1, 1)), 1)");
    s.step("return classifier.1(classifier.0(x))");
    s.finish()
}

/// torchvision's VGG: `features` from a configuration (`0` = max pool), `avgpool` to 7x7, and
/// the classifier Linear-ReLU-Dropout-Linear-ReLU-Dropout-Linear.
fn vgg(comment: &str, cfg: &[usize], batch_norm: bool) -> String {
    let mut s = SpecText::new(comment, "[3, 224, 224]");
    let (mut cin, mut index) = (3, 0);
    for &v in cfg {
        if v == 0 {
            s.decl(
                &format!("features.{index}"),
                "MaxPool2d(kernel_size=2, stride=2)",
            );
            s.step(&format!("x = features.{index}(x)"));
            index += 1;
            continue;
        }
        s.decl(
            &format!("features.{index}"),
            &format!("Conv2d({cin}, {v}, kernel_size=3, padding=1)"),
        );
        if batch_norm {
            s.decl(
                &format!("features.{}", index + 1),
                &format!("BatchNorm2d({v})"),
            );
            s.step(&format!(
                "x = relu(features.{}(features.{index}(x)))",
                index + 1
            ));
            index += 3;
        } else {
            s.step(&format!("x = relu(features.{index}(x))"));
            index += 2;
        }
        cin = v;
    }
    s.decl("avgpool", "AdaptiveAvgPool2d((7, 7))");
    s.decl("classifier.0", "Linear(512 * 7 * 7, 4096)");
    s.decl("classifier.2", "Dropout(p=0.5)");
    s.decl("classifier.3", "Linear(4096, 4096)");
    s.decl("classifier.5", "Dropout(p=0.5)");
    s.decl("classifier.6", "Linear(4096, 1000)");
    s.step("x = flatten(avgpool(x), 1)");
    s.step("x = classifier.2(relu(classifier.0(x)))");
    s.step("x = classifier.5(relu(classifier.3(x)))");
    s.step("return classifier.6(x)");
    s.finish()
}

pub fn vgg11_bn() -> String {
    vgg(
        "torchvision vgg11_bn",
        &[64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0],
        true,
    )
}

pub fn vgg16() -> String {
    vgg(
        "torchvision vgg16",
        &[
            64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
        ],
        false,
    )
}

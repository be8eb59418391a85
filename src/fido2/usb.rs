//! Which FIDO HID node and which PC/SC reader are the same key. A YubiKey is
//! one USB device with several interfaces: the CCID interface pcscd shows as
//! a reader, the FIDO HID interface the kernel shows as `/dev/hidrawN`. The
//! CCID driver reports the reader's USB bus number and device address
//! (`SCARD_ATTR_CHANNEL_ID`: `0x0020 << 16 | bus << 8 | address`); sysfs
//! leads from `class/hidraw/hidrawN` up to the USB device, whose `busnum`
//! and `devnum` files hold the same two numbers.
//!
//! The sysfs root is a parameter (`/sys` in use; a tree in a temp dir in
//! the tests).

use std::path::{Path, PathBuf};

/// A USB device's place on the machine: its bus and its address on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct UsbAddr {
    pub bus: u32,
    pub dev: u32,
}

/// The channel type PC/SC gives USB readers.
const CHANNEL_USB: u32 = 0x0020;

impl UsbAddr {
    /// From a reader's `SCARD_ATTR_CHANNEL_ID` (a DWORD, little-endian, 4
    /// or 8 bytes as the platform's DWORD is): `None` unless it says USB.
    pub(crate) fn from_channel_id(raw: &[u8]) -> Option<UsbAddr> {
        let v = u32::from_le_bytes(raw.get(..4)?.try_into().ok()?);
        (v >> 16 == CHANNEL_USB).then_some(UsbAddr {
            bus: (v >> 8) & 0xFF,
            dev: v & 0xFF,
        })
    }
}

/// The name of a hidraw node (`hidraw3` for `/dev/hidraw3`).
pub(crate) fn node_name(path: &str) -> Option<&str> {
    let name = Path::new(path).file_name()?.to_str()?;
    name.starts_with("hidraw").then_some(name)
}

/// The USB device the hidraw node `node` belongs to: from
/// `<sysfs>/class/hidraw/<node>/device` up through its parents to the
/// first folder with `busnum` and `devnum`.
pub(crate) fn usb_of_hidraw(sysfs: &Path, node: &str) -> Option<UsbAddr> {
    let root = sysfs.canonicalize().ok()?;
    let mut dir: PathBuf = sysfs
        .join("class/hidraw")
        .join(node)
        .join("device")
        .canonicalize()
        .ok()?;
    while dir.starts_with(&root) && dir != root {
        if let (Some(bus), Some(dev)) = (number(&dir, "busnum"), number(&dir, "devnum")) {
            return Some(UsbAddr { bus, dev });
        }
        dir = dir.parent()?.to_path_buf();
    }
    None
}

/// What tells one insertion of a key from the next: the kernel's HID
/// device behind the node (its name ends in a number the kernel never
/// reuses), so a key pulled and put back shows as new even under the same
/// node name.
pub(crate) fn insertion_of(sysfs: &Path, node: &str) -> Option<PathBuf> {
    sysfs
        .join("class/hidraw")
        .join(node)
        .join("device")
        .canonicalize()
        .ok()
}

fn number(dir: &Path, file: &str) -> Option<u32> {
    std::fs::read_to_string(dir.join(file))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A sysfs tree as Linux lays it out: the USB devices under
    /// `devices/…/usbN/N-P`, an interface `N-P:1.K` below, the HID device
    /// below that with its `hidraw/hidrawM`, and `class/hidraw/hidrawM` a
    /// link to it whose `device` links back up to the HID device.
    struct FakeSys {
        dir: tempfile::TempDir,
    }

    impl FakeSys {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join("class/hidraw")).unwrap();
            FakeSys { dir }
        }

        fn root(&self) -> &Path {
            self.dir.path()
        }

        /// A USB device at `port` (e.g. "1-2") with `bus`/`dev`, and a HID
        /// interface with hidraw node `node` (or none).
        fn usb(&self, port: &str, bus: u32, dev: u32, node: Option<&str>) {
            let usb = self
                .root()
                .join(format!("devices/pci0000:00/0000:00:14.0/usb{bus}/{port}"));
            std::fs::create_dir_all(&usb).unwrap();
            std::fs::write(usb.join("busnum"), format!("{bus}\n")).unwrap();
            std::fs::write(usb.join("devnum"), format!("{dev}\n")).unwrap();
            let Some(node) = node else { return };
            let hid = usb.join(format!("{port}:1.1/0003:1050:0407.00{dev:02X}"));
            let hidraw = hid.join("hidraw").join(node);
            std::fs::create_dir_all(&hidraw).unwrap();
            symlink(
                "../../../0003:1050:0407.00".to_string() + &format!("{dev:02X}"),
                hidraw.join("device"),
            )
            .unwrap();
            let rel = format!(
                "../../devices/pci0000:00/0000:00:14.0/usb{bus}/{port}/{port}:1.1/0003:1050:0407.00{dev:02X}/hidraw/{node}"
            );
            symlink(rel, self.root().join("class/hidraw").join(node)).unwrap();
        }
    }

    #[test]
    fn channel_ids_say_usb_bus_and_address() {
        // 0x0020 << 16 | bus 3 << 8 | address 17, as a 64-bit DWORD.
        let raw = 0x0020_0311u64.to_le_bytes();
        assert_eq!(
            UsbAddr::from_channel_id(&raw),
            Some(UsbAddr { bus: 3, dev: 17 })
        );
        assert_eq!(
            UsbAddr::from_channel_id(&0x0020_0311u32.to_le_bytes()),
            Some(UsbAddr { bus: 3, dev: 17 })
        );
        // A serial reader (0x0001) or a virtual one is no USB device.
        assert_eq!(
            UsbAddr::from_channel_id(&0x0001_0002u32.to_le_bytes()),
            None
        );
        assert_eq!(UsbAddr::from_channel_id(&[0x20, 0x00]), None);
    }

    #[test]
    fn a_hidraw_node_leads_to_its_usb_device_and_back() {
        let sys = FakeSys::new();
        sys.usb("1-2", 1, 5, Some("hidraw0"));
        sys.usb("1-3", 1, 7, Some("hidraw1"));
        sys.usb("2-1", 2, 5, Some("hidraw4"));
        // A USB device without HID (a reader of another maker).
        sys.usb("1-4", 1, 9, None);
        let root = sys.root();
        assert_eq!(
            usb_of_hidraw(root, "hidraw0"),
            Some(UsbAddr { bus: 1, dev: 5 })
        );
        assert_eq!(
            usb_of_hidraw(root, "hidraw1"),
            Some(UsbAddr { bus: 1, dev: 7 })
        );
        // Same address on another bus is another device.
        assert_eq!(
            usb_of_hidraw(root, "hidraw4"),
            Some(UsbAddr { bus: 2, dev: 5 })
        );
        assert_eq!(usb_of_hidraw(root, "hidraw9"), None);
        // Each insertion has its own HID device.
        let first = insertion_of(root, "hidraw0").unwrap();
        assert!(first.ends_with("0003:1050:0407.0005"), "{first:?}");
        assert_ne!(insertion_of(root, "hidraw1"), Some(first));
        assert_eq!(insertion_of(root, "hidraw9"), None);
        assert_eq!(node_name("/dev/hidraw1"), Some("hidraw1"));
        assert_eq!(node_name("/dev/ttyS0"), None);
    }

    #[test]
    fn the_walk_up_stays_inside_the_sysfs_root() {
        // A node whose device has no USB parent (a uhid device, as in the
        // FIDO2 guest): no address, even though folders above the root
        // might hold busnum files.
        let sys = FakeSys::new();
        let virt = sys
            .root()
            .join("devices/virtual/misc/uhid/0003:1209:0001.0001/hidraw/hidraw2");
        std::fs::create_dir_all(&virt).unwrap();
        symlink("../../../0003:1209:0001.0001", virt.join("device")).unwrap();
        symlink(
            "../../devices/virtual/misc/uhid/0003:1209:0001.0001/hidraw/hidraw2",
            sys.root().join("class/hidraw/hidraw2"),
        )
        .unwrap();
        std::fs::write(sys.root().join("busnum"), "1").unwrap();
        std::fs::write(sys.root().join("devnum"), "1").unwrap();
        assert_eq!(usb_of_hidraw(sys.root(), "hidraw2"), None);
    }
}
